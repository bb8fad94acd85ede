#!/usr/bin/env bash
here=$(cd "$(dirname "$0")" && pwd)
"$here/redis-cluster-down.sh"; "$here/s3-down.sh"
