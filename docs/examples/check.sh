#!/bin/bash
# check.sh: example [[vrrp.track]] script for docs/examples/lbd.toml.
# lbd runs it every `interval`; exit status 0 means healthy. This one checks
# that the local proxy accepts connections on the plain HTTP frontend.
exec 3<>/dev/tcp/198.18.0.100/80
