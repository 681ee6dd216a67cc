// Runs the test file that imports this first inside a network namespace of its own, as TOOLCHAIN.md
// measured for Janus: Janus never gathers ICE candidates on a loopback interface, and a test must not
// use the machine's own. So the file runs again, as root, under `unshare --net` with `lo` up and a veth
// pair, v0 (10.77.0.1/24, Janus's media interface: JANUS_ICE_INTERFACE=v0) and v1 (10.77.0.2/24).
// Everything the file starts (anvil, the backend, its Janus servers, Chromium) lives in that
// namespace and nothing leaves it. The outer process only waits and passes the exit status on; node's
// test runner reads the inner one's report as the file's.

import { spawnSync } from 'node:child_process';

/** Janus's interface and address inside the namespace. */
export const MEDIA_INTERFACE = 'v0';
export const MEDIA_ADDRESS = '10.77.0.1';

if (process.env.CONFERENCE_NETNS !== '1') {
  const setup = [
    'ip link set lo up',
    'ip link add v0 type veth peer name v1',
    `ip addr add ${MEDIA_ADDRESS}/24 dev v0`,
    'ip addr add 10.77.0.2/24 dev v1',
    'ip link set v0 up',
    'ip link set v1 up',
    'exec "$@"',
  ].join(' && ');
  const inner = spawnSync('unshare', ['--net', '--', 'sh', '-c', setup, 'sh', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, CONFERENCE_NETNS: '1' },
  });
  if (inner.error) console.error(`could not run the test in a network namespace of its own (unshare, as root): ${inner.error.message}`);
  process.exit(inner.status ?? 1);
}
