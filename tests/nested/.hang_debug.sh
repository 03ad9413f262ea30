deno test --no-check -A tests/runtime/resources_test.ts > /tmp/t.log 2>&1 &
pid=$!
for i in $(seq 1 60); do sleep 5; if ! kill -0 $pid 2>/dev/null; then break; fi; done
cat /tmp/t.log
if kill -0 $pid 2>/dev/null; then
  echo "=== still running after 300 s; threads:"
  for t in /proc/$pid/task/*; do echo "$(basename $t) $(cat $t/comm) state=$(grep State $t/status | cut -f2) wchan=$(cat $t/wchan)"; cat $t/stack 2>/dev/null | head -8; done
  grep -c . /proc/$pid/maps; ls /proc/$pid/fd | wc -l
fi
