import * as assert from 'node:assert/strict';
import { inRepository, isRepositoryNode, topRows } from '../../repositories';

type Row = { name: string; repository?: string };
const repositoryOf = (row: Row) => row.repository;

describe('views of a multi-root workspace', () => {
  const rows: Row[] = [
    { name: 'main', repository: '/a' }, { name: 'x', repository: '/b' }, { name: 'feat', repository: '/a' },
  ];

  it('shows the rows themselves when there is one repository', () => {
    const one = rows.filter((r) => r.repository === '/a');
    assert.deepEqual(topRows(one, repositoryOf), one);
    assert.deepEqual(topRows([{ name: 'old server' }], repositoryOf), [{ name: 'old server' }]);
  });

  it('groups rows by repository, first seen first, when there are several', () => {
    const top = topRows(rows, repositoryOf);
    assert.deepEqual(top, [{ kind: 'repository', repository: '/a' }, { kind: 'repository', repository: '/b' }]);
    assert.ok(top.every(isRepositoryNode));
    const [a, b] = top.filter(isRepositoryNode);
    assert.deepEqual(inRepository(rows, repositoryOf, a).map((r) => r.name), ['main', 'feat']);
    assert.deepEqual(inRepository(rows, repositoryOf, b).map((r) => r.name), ['x']);
    assert.equal(isRepositoryNode(rows[0]), false);
  });
});
