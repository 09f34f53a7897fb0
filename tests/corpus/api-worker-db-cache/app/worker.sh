#!/bin/sh
# The worker: polls the API like a job queue consumer would.
while true; do
    wget -q -O /dev/null http://api:8080/ && echo "worker: job done"
    sleep 5
done
