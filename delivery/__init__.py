"""What reaches on-call: the alert outbox (what is owed, what was sent), the webhook that sends it, and
`health`, the lake's state at a glance behind `enumwatch status`.

It sits below the flows because the alerts flow delivers after each detection run; the on-call
commands on top read the same outbox.
"""
