import * as assert from 'node:assert/strict';
import { CHECK_ARGS, INSTALL_ARGS, SERVER_ARGS, commandLine, expandVariables, findInterpreter } from '../../python';

const never = () => Promise.reject(new Error('must not be asked'));

describe('python', () => {
  it('prefers the adw.python setting', async () => {
    assert.deepEqual(await findInterpreter({ setting: ' /venv/bin/python ', workspaceFolder: '/w', activeInterpreter: never }),
      { path: '/venv/bin/python', source: 'adw.python' });
  });

  it('then the Python extension\'s active interpreter', async () => {
    const found = await findInterpreter({ setting: '', workspaceFolder: '/w', activeInterpreter: async () => '/env/python' });
    assert.deepEqual(found, { path: '/env/python', source: 'Python extension' });
  });

  it('then python3 on PATH, also when the Python extension fails', async () => {
    const absent = await findInterpreter({ setting: '', workspaceFolder: undefined, activeInterpreter: async () => undefined });
    assert.deepEqual(absent, { path: 'python3', source: 'PATH' });
    const broken = await findInterpreter({ setting: '', workspaceFolder: undefined, activeInterpreter: never });
    assert.deepEqual(broken, { path: 'python3', source: 'PATH' });
  });

  it('expands ${workspaceFolder}, ${userHome} and ~', () => {
    const home = process.env.HOME;
    assert.equal(expandVariables('${workspaceFolder}/.venv/bin/python', '/w'), '/w/.venv/bin/python');
    assert.equal(expandVariables('~/py/bin/python', undefined), `${home}/py/bin/python`);
    assert.equal(expandVariables('${userHome}/x', undefined), `${home}/x`);
    assert.equal(expandVariables('/a~b', undefined), '/a~b');
  });

  it('starts the server as a module and installs the adw package', () => {
    assert.deepEqual(SERVER_ARGS, ['-m', 'adw', 'lsp']);
    assert.equal(CHECK_ARGS[0], '-c');
    assert.equal(commandLine('/venv/bin/python', INSTALL_ARGS, 'linux'), '/venv/bin/python -m pip install adw');
  });

  it('quotes command lines the user will paste', () => {
    assert.equal(commandLine('/my env/python', ['-c', "print('x')"], 'linux'),
      `'/my env/python' -c 'print('\\''x'\\'')'`);
    assert.equal(commandLine('C:\\Program Files\\py.exe', ['-m', 'pip'], 'win32'), '"C:\\Program Files\\py.exe" -m pip');
  });
});
