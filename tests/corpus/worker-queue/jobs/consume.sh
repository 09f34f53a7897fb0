#!/bin/sh
# Takes the jobs from the spool and counts them on the status page.
done_jobs=0
echo "0 jobs processed" > /status/index.html
while true; do
    for job in /spool/job-*; do
        case "$job" in *.tmp|'/spool/job-*') continue ;; esac
        rm -f "$job" && done_jobs=$((done_jobs + 1))
    done
    echo "$done_jobs jobs processed" > /status/index.html
    sleep 1
done
