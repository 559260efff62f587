"""Alert delivery for on-call: the outbox table (what is owed, what was sent) and the webhook that sends it.

It sits below the flows because the alerts flow delivers after each detection run; the on-call
commands on top read the same outbox.
"""
