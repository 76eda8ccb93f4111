"""The one home of the Redis connection and the RQ queue (jobs, leases, index generations and
rate counts all use this connection)."""
import django_rq
from django.conf import settings


def redis_connection():
    return django_rq.get_connection(settings.RQ_QUEUE)


def get_queue():
    return django_rq.get_queue(settings.RQ_QUEUE)
