#!/bin/sh
# Drops one job file in the spool every second.
n=0
while true; do
    n=$((n + 1))
    echo "job $n" > "/spool/job-$n.tmp" && mv "/spool/job-$n.tmp" "/spool/job-$n"
    sleep 1
done
