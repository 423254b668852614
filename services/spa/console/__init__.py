"""The console: server-rendered pages for the people who work the cases (call handlers, team
members, the CRU, locality coordinators, commissioners, administrators), in the NHS.UK design
system. Jinja2 renders every page on the server and each action is a plain form, so the console
works without JavaScript; htmx, where it loads, keeps the queue live without reloading.

Each person signs in (OpenID Connect with their organisation's identity provider, or the demo
accounts of `make run`) and acts through the same service functions as the API, as a principal
of their own (``person:<id>``): what they may see is what their bindings allow, and every audit
record names them.
"""
