import { describe, expect, it } from 'vitest';
import { resolveWorkspacePath } from '../../src/workspaces/paths.ts';

describe('resolveWorkspacePath', () => {
  it('roots relative paths at ~/workspace/app, ~/ at home, and absolute paths under /home/sandbox', () => {
    expect(resolveWorkspacePath('src/main.ts')).toEqual({ parts: ['workspace', 'app', 'src', 'main.ts'], inSandbox: '/home/sandbox/workspace/app/src/main.ts' });
    expect(resolveWorkspacePath('.').parts).toEqual(['workspace', 'app']);
    expect(resolveWorkspacePath('./a//b/./c').parts).toEqual(['workspace', 'app', 'a', 'b', 'c']);
    expect(resolveWorkspacePath('~/.config/x').parts).toEqual(['.config', 'x']);
    expect(resolveWorkspacePath('~').parts).toEqual([]);
    expect(resolveWorkspacePath('/home/sandbox/workspace/app/x').parts).toEqual(['workspace', 'app', 'x']);
  });

  it.each([
    ['..', "'..' is not allowed"], ['a/../../b', "'..' is not allowed"], ['~/../etc', "'..' is not allowed"],
    ['/etc/passwd', 'absolute paths must be under /home/sandbox'], ['/home/sandboxed/x', 'absolute paths must be under'],
    ['/home/sandbox/../x', "'..' is not allowed"], ['a\u0000b', 'contains a NUL byte'], ['', 'is required'], ['x'.repeat(5000), 'longer than'],
  ])('refuses %j, saying why', (path, why) => {
    expect(() => resolveWorkspacePath(path)).toThrow(why);
  });
});
