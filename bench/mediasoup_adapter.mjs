// The benchmark's mediasoup "app": what a mediasoup application's server does, and no more.
//
//   node bench/mediasoup_adapter.mjs [--workers N] [--log-level warn]
//
// One mediasoup worker per core (--workers, default: the number of CPUs), a router per meeting
// (Opus + VP8) on the worker with the fewest routers, WebRTC transports on 127.0.0.1 (UDP),
// producers and consumers created on request. mediasoup has no signaling of its own: the
// Python side (bench/mediasoup.py) drives this process over a local TCP socket with JSON
// lines, one connection per load-generator process:
//
//   -> {"id": 1, "method": "createTransport", "params": {"room": "r1"}}
//   <- {"id": 1, "result": {"id": "...", "iceParameters": {...}, "iceCandidates": [...],
//                           "dtlsParameters": {...}}}
//   <- {"id": 2, "error": "..."}                          (a request that failed)
//   <- {"event": "newProducer", "room": "r1", "peer": "p1", "producerId": "...", "kind": "video"}
//
// Methods: join {room} (subscribe this connection to the room's newProducer events; returns
// the producers already there), createTransport {room, peer}, connectTransport {transportId,
// dtlsParameters}, produce {transportId, kind, rtpParameters}, consume {transportId,
// producerId, rtpCapabilities, paused, preferredLayers?}, setPreferredLayers {consumerId,
// spatialLayer}, resumeConsumer {consumerId}, closePeer {room, peer},
// closeRoom {room}, info {}, egress {} (RTP packets every consumer has sent). Everything a peer made is closed when its connection closes.
//
// At start it prints one line on stdout: {"event": "ready", "port": <control port>,
// "workers": [<pid>, ...], "version": "3.27.1"}. It exits when stdin closes (its parent went
// away), on SIGTERM, or when a worker dies (exit status 1: the benchmark must not go on with
// fewer workers than it reports).
//
// The C++ worker is MEDIASOUP_WORKER_BIN (set by bench/mediasoup.py; the build in
// ../shared/peers/mediasoup/); mediasoup's Node API comes from bench/mediasoup_node/node_modules
// (`npm ci --ignore-scripts` there), or from MEDIASOUP_NODE_MODULES.
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const modules = process.env.MEDIASOUP_NODE_MODULES ?? path.join(here, 'mediasoup_node', 'node_modules');
const require = createRequire(path.join(modules, 'noop.js'));
const mediasoup = require('mediasoup');

// Payload types as the load generator's SDP has them (bench/lean.py: AUDIO_PT, VIDEO_PT), so
// that consumers keep the numbers the endpoints expect.
const MEDIA_CODECS = [
	{ kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2, preferredPayloadType: 111 },
	{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000, parameters: {}, preferredPayloadType: 96 },
];

function option(name, fallback) {
	const i = process.argv.indexOf(name);
	return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const workerCount = Number(option('--workers', String(os.availableParallelism?.() ?? os.cpus().length)));
if (!Number.isInteger(workerCount) || workerCount < 1) {
	console.error(`--workers must be a positive integer, not ${option('--workers', '')}`);
	process.exit(2);
}
const logLevel = option('--log-level', 'warn');

const workers = [];
for (let i = 0; i < workerCount; i++) {
	const worker = await mediasoup.createWorker({ logLevel, rtcMinPort: 10000, rtcMaxPort: 59999 });
	worker.on('died', (error) => {
		console.error(`mediasoup worker ${worker.pid} died: ${error?.message ?? error}`);
		process.exit(1);
	});
	workers.push({ worker, routers: 0 });
}

// room name -> { router, worker entry, peers: Map(peer -> { transports, producers }), listeners }
const rooms = new Map();
const transports = new Map(); // id -> { transport, room, peer }
const consumers = new Map(); // id -> consumer

async function getRoom(name) {
	let room = rooms.get(name);
	if (room === undefined) {
		// The router goes to the least loaded worker, as mediasoup apps place meetings.
		const entry = workers.reduce((a, b) => (b.routers < a.routers ? b : a));
		entry.routers++;
		room = { router: null, entry, peers: new Map(), listeners: new Set(), ready: null };
		room.ready = entry.worker.createRouter({ mediaCodecs: MEDIA_CODECS }).then((router) => {
			room.router = router;
			return room;
		});
		rooms.set(name, room);
	}
	return room.ready;
}

function peerOf(room, name) {
	let peer = room.peers.get(name);
	if (peer === undefined) {
		peer = { transports: new Set(), producers: new Map() };
		room.peers.set(name, peer);
	}
	return peer;
}

function closePeer(roomName, peerName) {
	const room = rooms.get(roomName);
	const peer = room?.peers.get(peerName);
	if (peer === undefined) return;
	for (const id of peer.transports) {
		transports.get(id)?.transport.close(); // closes its producers and consumers
		transports.delete(id);
	}
	room.peers.delete(peerName);
}

function closeRoom(name) {
	const room = rooms.get(name);
	if (room === undefined) return;
	for (const peer of [...room.peers.keys()]) closePeer(name, peer);
	room.router?.close();
	room.entry.routers--;
	rooms.delete(name);
}

function transportOf(id) {
	const entry = transports.get(id);
	if (entry === undefined) throw new Error(`no transport ${id}`);
	return entry;
}

const methods = {
	async info() {
		return { version: mediasoup.version, workers: workers.map((w) => w.worker.pid), rooms: rooms.size };
	},

	async join({ room: name }, conn) {
		const room = await getRoom(name);
		room.listeners.add(conn);
		conn.rooms.add(name);
		const producers = [];
		for (const [peer, p] of room.peers) {
			for (const producer of p.producers.values()) {
				producers.push({ peer, producerId: producer.id, kind: producer.kind });
			}
		}
		return { producers, rtpCapabilities: room.router.rtpCapabilities };
	},

	async createTransport({ room: name, peer: peerName }, conn) {
		const room = await getRoom(name);
		const transport = await room.router.createWebRtcTransport({
			listenInfos: [{ protocol: 'udp', ip: '127.0.0.1' }],
			enableUdp: true,
			enableTcp: false,
			preferUdp: true,
		});
		transports.set(transport.id, { transport, room: name, peer: peerName });
		peerOf(room, peerName).transports.add(transport.id);
		conn.peers.add(`${name}\u0000${peerName}`);
		return {
			id: transport.id,
			iceParameters: transport.iceParameters,
			iceCandidates: transport.iceCandidates,
			dtlsParameters: transport.dtlsParameters,
		};
	},

	async connectTransport({ transportId, dtlsParameters }) {
		await transportOf(transportId).transport.connect({ dtlsParameters });
		return {};
	},

	async produce({ transportId, kind, rtpParameters }) {
		const { transport, room: name, peer: peerName } = transportOf(transportId);
		const producer = await transport.produce({ kind, rtpParameters });
		const room = rooms.get(name);
		peerOf(room, peerName).producers.set(producer.id, producer);
		producer.observer.on('close', () => room.peers.get(peerName)?.producers.delete(producer.id));
		const event = { event: 'newProducer', room: name, peer: peerName, producerId: producer.id, kind };
		for (const listener of room.listeners) listener.send(event);
		return { id: producer.id };
	},

	async consume({ transportId, producerId, rtpCapabilities, paused = true, preferredLayers }) {
		const { transport, room: name } = transportOf(transportId);
		const { router } = rooms.get(name);
		if (!router.canConsume({ producerId, rtpCapabilities })) {
			throw new Error(`cannot consume producer ${producerId} with these capabilities`);
		}
		const consumer = await transport.consume({ producerId, rtpCapabilities, paused, preferredLayers });
		consumers.set(consumer.id, consumer);
		consumer.observer.on('close', () => consumers.delete(consumer.id));
		return { id: consumer.id, kind: consumer.kind, rtpParameters: consumer.rtpParameters };
	},

	async setPreferredLayers({ consumerId, spatialLayer }) {
		const consumer = consumers.get(consumerId);
		if (consumer === undefined) throw new Error(`no consumer ${consumerId}`);
		if (consumer.type === 'simulcast') await consumer.setPreferredLayers({ spatialLayer });
		return {};
	},

	async resumeConsumer({ consumerId }) {
		const consumer = consumers.get(consumerId);
		if (consumer === undefined) throw new Error(`no consumer ${consumerId}`);
		await consumer.resume();
		return {};
	},

	async closePeer({ room, peer }, conn) {
		closePeer(room, peer);
		conn.peers.delete(`${room}\u0000${peer}`);
		return {};
	},

	// What every consumer has sent (RTP packets), for the benchmark's server-side egress count.
	async egress() {
		let packets = 0;
		for (const consumer of consumers.values()) {
			for (const stat of await consumer.getStats()) {
				if (stat.type === 'outbound-rtp') packets += stat.packetCount ?? 0;
			}
		}
		return { packets, consumers: consumers.size };
	},

	async closeRoom({ room }) {
		closeRoom(room);
		return {};
	},
};

const server = net.createServer((socket) => {
	socket.setNoDelay(true);
	const conn = {
		rooms: new Set(),
		peers: new Set(),
		send(message) {
			if (!socket.destroyed) socket.write(JSON.stringify(message) + '\n');
		},
	};
	let buffered = '';
	socket.setEncoding('utf8');
	socket.on('data', (chunk) => {
		buffered += chunk;
		let newline;
		while ((newline = buffered.indexOf('\n')) >= 0) {
			const line = buffered.slice(0, newline);
			buffered = buffered.slice(newline + 1);
			if (line.trim()) handle(conn, line);
		}
	});
	socket.on('error', () => {});
	socket.on('close', () => {
		// A load generator that went away leaves nothing behind.
		for (const key of conn.peers) {
			const [room, peer] = key.split('\u0000');
			closePeer(room, peer);
		}
		for (const name of conn.rooms) rooms.get(name)?.listeners.delete(conn);
	});
});

async function handle(conn, line) {
	let request;
	try {
		request = JSON.parse(line);
	} catch {
		conn.send({ id: null, error: 'not JSON' });
		return;
	}
	const method = methods[request?.method];
	if (typeof method !== 'function') {
		conn.send({ id: request?.id ?? null, error: `unknown method ${JSON.stringify(request?.method)}` });
		return;
	}
	try {
		conn.send({ id: request.id, result: await method(request.params ?? {}, conn) });
	} catch (error) {
		conn.send({ id: request.id, error: String(error?.message ?? error) });
	}
}

function shutdown(status) {
	server.close();
	for (const { worker } of workers) worker.close();
	process.exit(status);
}

process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
process.stdin.on('end', () => shutdown(0));
process.stdin.on('error', () => shutdown(0));
process.stdin.resume();

server.listen(0, '127.0.0.1', () => {
	const ready = {
		event: 'ready',
		port: server.address().port,
		workers: workers.map((w) => w.worker.pid),
		version: mediasoup.version,
	};
	process.stdout.write(JSON.stringify(ready) + '\n');
});
