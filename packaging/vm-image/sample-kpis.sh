#!/bin/sh
# fedvm sample application: every second, writes its current users and the load average as one
# KPI row (/kpi/unencrypted/users: a CSV header line and a value line), the way any program can.
set -eu
kpi=${FEDVM_SAMPLE_KPI:-/kpi/unencrypted/users}
n=0
while :; do
  n=$((n + 1))
  users=$((10 + (n * 7) % 50))
  load=$(cut -d' ' -f1 /proc/loadavg)
  printf 'current_users,load,sample\n%s,%s,%s\n' "$users" "$load" "$n" > "$kpi" || echo "sample: write refused ($?)" >&2
  sleep 1
done
