#!/bin/sh
# notify.sh: example VRRP notify script for docs/examples/lbd.toml.
# lbd runs it on each state change of a [[vrrp]] instance as
#   notify.sh NAME NEW_STATE        (for example: notify.sh web MASTER)
logger -t lbd-notify -- "vrrp instance $1 is now $2"
