import { Type, type Static } from '@sinclair/typebox';

const Path = Type.String({ minLength: 1, maxLength: 4096, description: 'Relative to ~/workspace/app, or ~/... for home, or absolute under /home/sandbox.' });

export const FilesQuery = Type.Object({
  path: Type.Optional(Path),
  recursive: Type.Optional(Type.Boolean()),
  encoding: Type.Optional(Type.Union([Type.Literal('utf8'), Type.Literal('base64')], { description: 'Read a file as JSON {path, content, encoding, size} instead of raw bytes.' })),
  offset: Type.Optional(Type.Integer({ minimum: 0 })),
  length: Type.Optional(Type.Integer({ minimum: 1 })),
}, { additionalProperties: false });
export type FilesQuery = Static<typeof FilesQuery>;

export const WriteQuery = Type.Object({
  path: Type.Optional(Path),
  append: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
export type WriteQuery = Static<typeof WriteQuery>;

/** The README's JSON write body. */
export const WriteFile = Type.Object({
  path: Path,
  content: Type.String(),
  encoding: Type.Optional(Type.Union([Type.Literal('utf8'), Type.Literal('base64')])),
  append: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
export type WriteFile = Static<typeof WriteFile>;

export const DeleteQuery = Type.Object({
  path: Path,
  recursive: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
export type DeleteQuery = Static<typeof DeleteQuery>;

export const Mkdir = Type.Object({ path: Path }, { additionalProperties: false });
export type Mkdir = Static<typeof Mkdir>;

export const Move = Type.Object({ from: Path, to: Path, overwrite: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
export type Move = Static<typeof Move>;

export const ArchiveQuery = Type.Object({ path: Type.Optional(Path) }, { additionalProperties: false });
export type ArchiveQuery = Static<typeof ArchiveQuery>;

export const FileEntry = Type.Object({
  name: Type.String(),
  path: Type.String(),
  type: Type.Union([Type.Literal('file'), Type.Literal('dir'), Type.Literal('symlink'), Type.Literal('other')]),
  size: Type.Integer(),
  mtime: Type.String({ format: 'date-time' }),
});

export const Listing = Type.Object({
  path: Type.String(),
  type: Type.Literal('dir'),
  entries: Type.Array(FileEntry),
  truncated: Type.Boolean(),
});

export const Written = Type.Object({ path: Type.String(), bytes: Type.Integer(), appended: Type.Boolean() });
