echo read; echo 0 > /tmp/status
