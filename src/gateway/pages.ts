/** The small HTML pages the gateway answers with itself. Nothing user-supplied is echoed unescaped. */
const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, body: string, refreshS?: number): string {
  return `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">${refreshS ? `<meta http-equiv="refresh" content="${refreshS}">` : ''}<title>${escape(title)}</title>
<style>body{font:16px system-ui,sans-serif;display:grid;place-items:center;min-height:90vh;margin:0;color:#222}main{max-width:32em;text-align:center}p{color:#666}</style></head>
<body><main><h1>${escape(title)}</h1><p>${escape(body)}</p></main></body></html>`;
}

export const notFoundPage = () => page('Nothing here', 'There is no preview at this address. Check the link, or ask for a new one.');
export const startingPage = () => page('Starting…', 'This app was asleep and is waking up. The page reloads by itself in a moment.', 2);
export const wakeFailedPage = (why: string) => page('This app could not start', why);
export const notListeningPage = (port: number) => page('Nothing is listening yet', `The sandbox is running, but no server answers on port ${port} yet. The page reloads by itself.`, 3);
export const sandboxDownPage = () => page('This app is switched off', 'Its sandbox was shut down by its owner or failed to start, and a visit does not start it again. Ask its owner to start it.');
export const privatePage = () => page('This preview is private', 'Open it with the link you were given: it carries a preview token.');
export const badRequestPage = (why: string) => page('Bad request', `The browser sent a request this gateway cannot pass on: ${why}.`);
