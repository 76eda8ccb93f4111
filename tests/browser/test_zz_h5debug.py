import os, sys
from tests.browser.helpers import *
import pytest
pytestmark = [pytest.mark.django_db(transaction=True)]
def test_dbg(new_page, live_server, loaded):
    page = new_page(width=360, height=800, is_mobile=True, has_touch=True)
    page.goto(live_server.url + "/")
    print(page.evaluate("""() => [...document.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > 360).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right) + ' w=' + Math.round(e.getBoundingClientRect().width))"""))
    shot(page, "dbg-360")
