import type { Route } from './route.ts';
import { CreateSandbox, Keepalive, NoQuery, Purged, Sandbox, SandboxArray } from './schemas.ts';
import {
  createSandbox, destroySandbox, getSandbox, keepaliveSandbox, listSandboxes, purgeSandbox,
} from './sandboxes.ts';

const tags = ['readme'];

/**
 * The routes of the published README, kept exactly as documented there. They share handlers with /v1;
 * `POST /v1/sandboxes/{id}/stop` and the tasks/files routes the README lists are the canonical ones.
 */
export const readmeRoutes: Route[] = [
  {
    method: 'POST', path: '/sandbox', operationId: 'readmeCreateSandbox', tags, summary: 'Create a sandbox (README route)',
    body: CreateSandbox, bodyOptional: true, query: NoQuery,
    response: { status: 201, schema: Sandbox, description: 'Created and running.' }, handler: createSandbox,
  },
  {
    method: 'GET', path: '/sandboxes', operationId: 'readmeListSandboxes', tags, summary: 'List every sandbox the caller may see (README route)',
    query: NoQuery, response: { status: 200, schema: SandboxArray, description: 'All sandboxes, newest first.' },
    handler: (ctx) => {
      const all = [];
      let cursor: string | undefined;
      do {
        const page = listSandboxes({ ...ctx, query: { limit: 200, ...(cursor ? { cursor } : {}) } });
        all.push(...page.data);
        cursor = page.next_cursor ?? undefined;
      } while (cursor);
      return { status: 200, body: all };
    },
  },
  {
    method: 'GET', path: '/sandbox/{id}', operationId: 'readmeGetSandbox', tags, summary: 'Get one sandbox (README route)',
    query: NoQuery, response: { status: 200, schema: Sandbox, description: 'The sandbox.' }, handler: getSandbox,
  },
  {
    method: 'POST', path: '/sandbox/{id}/keepalive', operationId: 'readmeKeepalive', tags, summary: 'Postpone idle stop (README route; no body needed)',
    body: Keepalive, bodyOptional: true, query: NoQuery, response: { status: 200, schema: Sandbox, description: 'The sandbox.' },
    handler: keepaliveSandbox,
  },
  {
    method: 'DELETE', path: '/sandbox/{id}', operationId: 'readmeDeleteSandbox', tags, summary: 'Destroy the container, keep the workspace (README route)',
    query: NoQuery, response: { status: 200, schema: Sandbox, description: 'Destroyed.' }, handler: destroySandbox,
  },
  {
    method: 'POST', path: '/sandbox/{id}/purge', operationId: 'readmePurgeSandbox', tags, summary: 'Destroy and delete the workspace (README route)',
    query: NoQuery, response: { status: 200, schema: Purged, description: 'Purged.' }, handler: purgeSandbox,
  },
];
