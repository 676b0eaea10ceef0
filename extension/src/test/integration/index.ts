// extensionTestsPath module: VS Code's extension host calls run() and reports its outcome to the workbench.
import * as path from 'node:path';
import Mocha from 'mocha';

export async function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', timeout: 180_000, color: false, bail: true });
  mocha.addFile(path.join(__dirname, 'extension.test.js'));
  await new Promise<void>((resolve, reject) => {
    mocha.run((failures) => (failures ? reject(new Error(`${failures} test(s) failed`)) : resolve()));
  });
}
