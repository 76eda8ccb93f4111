from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from embeddings.models import ApiToken


class Command(BaseCommand):
    help = "Create an API token for USERNAME; the token is printed alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="a label shown in the admin")

    def handle(self, username, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        token, key = ApiToken.issue(user, name)
        self.stderr.write(f"Token {token.prefix}… for {username}; it is shown once:")
        self.stdout.write(key)
