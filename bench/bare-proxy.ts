import { Agent, createServer, request } from 'node:http';

/**
 * The least a Node reverse proxy does, as a baseline for the gateway: node:http in, node:http out through a
 * keep-alive pool, bodies piped, nothing checked. Usage: node bench/bare-proxy.ts <listen port> <upstream host> <upstream port>
 */
const [port, host, upstreamPort] = [Number(process.argv[2]), process.argv[3]!, Number(process.argv[4])];
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
createServer((req, res) => {
  const up = request({ host, port: upstreamPort, method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
    // Only the connection's own headers stay behind (a `Connection: close` would close the client's keep-alive).
    const headers: string[] = [];
    for (let i = 0; i < answer.rawHeaders.length; i += 2) {
      if (!/^(connection|keep-alive|transfer-encoding)$/i.test(answer.rawHeaders[i]!)) headers.push(answer.rawHeaders[i]!, answer.rawHeaders[i + 1]!);
    }
    res.writeHead(answer.statusCode ?? 502, headers);
    answer.pipe(res);
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
}).listen(port, '127.0.0.1', () => process.stdout.write('listening\n'));
