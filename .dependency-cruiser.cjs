// The layers of sandboxd, checked on every `npm test` (npm run layers). Data flows one way:
//   entry points (src/main.ts, threads/) → transport (api, gateway) → services → store, runtime, workspaces
// and everything may use the shared base (errors, log, ids, metrics, config, http, and model: the records
// and states every layer speaks of). A module imports only
// from its own layer's folder or from a layer below it; type-only imports count like any other.
const SHARED = '^src/(errors|log|ids|metrics|boundary|deadline|config|config-tokens|config-egress)\\.ts$|^src/(http|model)/';
const LOWER = '^src/(store|runtime|workspaces)/';
const SERVICES = '^src/(sandboxes|exec|tasks|files|processes|auth|health|secrets)/|^src/pool\\.ts$';
const TRANSPORT = '^src/(api|gateway)/';
const ENTRY = '^src/main\\.ts$|^threads/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'An import cycle makes load order matter and hides which module owns what (type-only cycles are erased before run time).',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'src-never-imports-threads',
      severity: 'error',
      comment: 'threads/ are entry points that call services; the library below them never reaches back up.',
      from: { path: '^src/' },
      to: { path: '^threads/' },
    },
    {
      name: 'shared-imports-only-shared',
      severity: 'error',
      comment: 'The shared base is used by every layer, so it may depend on none of them.',
      from: { path: SHARED },
      to: { path: '^src/', pathNot: SHARED },
    },
    {
      name: 'lower-layers-never-import-up',
      severity: 'error',
      comment: 'store, runtime and workspaces serve the services; they know nothing of services, transport or entry points.',
      from: { path: LOWER },
      to: { path: [SERVICES, TRANSPORT, ENTRY] },
    },
    {
      name: 'lower-layers-never-import-sideways',
      severity: 'error',
      comment: 'store, runtime and workspaces are independent backends: a service composes them.',
      from: { path: '^src/(store|runtime|workspaces)/' },
      to: { path: '^src/(store|runtime|workspaces)/', pathNot: '^src/$1/' },
    },
    {
      name: 'services-never-import-up',
      severity: 'error',
      comment: 'Services are called by transport and entry points; they never depend on how they are called.',
      from: { path: SERVICES },
      to: { path: [TRANSPORT, ENTRY] },
    },
    {
      name: 'transport-reaches-only-services',
      severity: 'error',
      comment: 'Route handlers and the gateway validate, call one service, and render: they receive services only.',
      from: { path: TRANSPORT },
      to: { path: LOWER },
    },
    {
      name: 'transport-never-imports-sideways',
      severity: 'error',
      comment: 'The API and the gateway are two transports over the same services; neither depends on the other.',
      from: { path: '^src/(api|gateway)/' },
      to: { path: '^src/(api|gateway)/', pathNot: '^src/$1/' },
    },
    {
      name: 'no-unknown-folders',
      severity: 'error',
      comment: 'Every module belongs to a layer: a new folder is added to one in .dependency-cruiser.cjs.',
      from: { path: '^(src|threads)/' },
      to: { path: '^(src|threads)/', pathNot: [SHARED, LOWER, SERVICES, TRANSPORT, ENTRY] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    includeOnly: '^(src|threads)/',
  },
};
