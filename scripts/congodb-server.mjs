// MongoDB wire-protocol test server for scripts/services: CongoDB from the npm
// package @push.rocks/smartmongo, installed by scripts/deps. Also a wire-level
// readiness check (an OP_MSG "hello" that must answer ok: 1).
//
//   node congodb-server.mjs serve --dir CONGODB_DIR --port PORT [--state STATE_DIR]
//   node congodb-server.mjs ping  --dir CONGODB_DIR --port PORT
//
// --state is not used by the server; it puts the state directory on the
// command line so that scripts/services can recognise its own process.
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

function parseArgs(argv) {
    const [mode, ...rest] = argv;
    const opts = { mode };
    for (let i = 0; i < rest.length; i += 2) {
        if (!rest[i].startsWith('--') || rest[i + 1] === undefined) throw new Error(`bad argument ${rest[i]}`);
        opts[rest[i].slice(2)] = rest[i + 1];
    }
    if (!opts.dir || !opts.port) throw new Error('--dir and --port are required');
    opts.port = Number(opts.port);
    return opts;
}

async function serve({ dir, port }) {
    const entry = path.join(dir, 'package', 'dist_ts', 'congodb', 'index.js');
    const { CongoServer } = await import(pathToFileURL(entry).href);
    const server = new CongoServer({ port, host: '127.0.0.1' });
    await server.start();
    console.log(`congodb: listening on 127.0.0.1:${port} (pid ${process.pid})`);
    // The storage lives in memory: nothing to flush, so a signal ends the
    // process at once (server.stop() waits for idle client sockets to close).
    for (const signal of ['SIGTERM', 'SIGINT']) {
        process.on(signal, () => {
            console.log(`congodb: ${signal}, exiting`);
            process.exit(0);
        });
    }
}

// One OP_MSG (opcode 2013) with a single body section holding {hello: 1}.
function ping({ dir, port }) {
    const require = createRequire(path.join(dir, 'package', 'package.json'));
    const { serialize, deserialize } = require('bson');
    const body = serialize({ hello: 1, $db: 'admin' });
    const header = Buffer.alloc(16 + 4 + 1);
    header.writeInt32LE(header.length + body.length, 0);
    header.writeInt32LE(1, 4); // requestID
    header.writeInt32LE(0, 8); // responseTo
    header.writeInt32LE(2013, 12); // OP_MSG
    header.writeUInt32LE(0, 16); // flagBits
    header.writeUInt8(0, 20); // section kind 0: body
    const fail = (why) => {
        console.error(`congodb ping: ${why}`);
        process.exit(1);
    };
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(2000, () => fail('timed out'));
    socket.on('error', (err) => fail(err.message));
    let reply = Buffer.alloc(0);
    socket.on('connect', () => socket.write(Buffer.concat([header, body])));
    socket.on('data', (chunk) => {
        reply = Buffer.concat([reply, chunk]);
        if (reply.length < 4 || reply.length < reply.readInt32LE(0)) return;
        if (reply.readInt32LE(12) !== 2013 || reply.readUInt8(20) !== 0) fail('unexpected reply');
        const doc = deserialize(reply.subarray(21, reply.readInt32LE(0)));
        if (doc.ok !== 1) fail(`hello answered ${JSON.stringify(doc)}`);
        socket.end();
        process.exit(0);
    });
}

try {
    const opts = parseArgs(process.argv.slice(2));
    if (opts.mode === 'serve') await serve(opts);
    else if (opts.mode === 'ping') ping(opts);
    else throw new Error(`unknown mode ${opts.mode}`);
} catch (err) {
    console.error(`congodb: ${err.stack || err}`);
    process.exit(1);
}
