// Attaches bpf/floors.o's floor_pass to an interface and pins the link, playing "another tool's
// XDP program" for the tests. Run inside the interface's namespace:
//   nsenter --net=/run/netns/NS node dist/test/lib/foreign-xdp.js IFACE PIN
import { BpfObject, attachXdp } from '../../src/native/index.js';
import { repoRoot } from './paths.js';

const [iface, pin] = process.argv.slice(2);
if (!iface || !pin) throw new Error('usage: foreign-xdp IFACE PIN');
const obj = await BpfObject.open(`${repoRoot()}/bpf/floors.o`);
const link = attachXdp(obj.progFd('floor_pass'), iface, 'native');
link.pin(pin);
link.close();
obj.close();
