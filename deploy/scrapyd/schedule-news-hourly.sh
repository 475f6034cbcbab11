#!/bin/sh
# Schedule the "news-hourly" job on the local scrapyd (scrapyd has no clock: cron or a timer calls this).
#   7 * * * *  snapcrawl  /opt/snapcrawl/deploy/scrapyd/schedule-news-hourly.sh
# Spider arguments are plain fields (start_urls=...); Scrapy settings are setting=NAME=VALUE fields.
# Exports go to an absolute folder: a job's working directory is scrapyd's, not the project's.
set -eu
SCRAPYD=${SCRAPYD:-http://127.0.0.1:6800}
curl -sS --fail-with-body "$SCRAPYD/schedule.json" \
  -d project=snapcrawl \
  -d spider=snapshots \
  -d start_urls=https://news.example.cn/ \
  -d setting=SNAPCRAWL_JOB_NAME=news-hourly \
  -d setting=SNAPCRAWL_EXPORT_URI=/var/lib/snapcrawl/exports \
  -d setting=SNAPCRAWL_STATE_PATH=/var/lib/snapcrawl/news-hourly/state.sqlite \
  -d setting=SNAPCRAWL_CONTACT=mailto:crawler-ops@example.org
echo
