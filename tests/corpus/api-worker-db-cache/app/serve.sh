#!/bin/sh
# The API: one page that says which database and cache it was given.
set -e
mkdir -p /www
echo "api ready (db ${DATABASE_URL##*@}, cache ${CACHE_URL#redis://})" > /www/index.html
exec httpd -f -p 8080 -h /www
