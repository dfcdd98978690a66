// web/src/folders.js in Node: a picked or dropped folder's files grouped into classes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { groupByFolder, isHidden } from '../src/folders.js';

const entry = (path) => ({ file: { name: path.split('/').pop() }, path });
const shape = ({ groups }) => [...groups].map(([c, items]) => [c, items.map((i) => i.name)]);

test("a picked folder's sub-folders become classes, sorted; loose files go to the selected class", () => {
  const got = groupByFolder(['digits/b/1.jpg', 'digits/a/2.jpg', 'digits/loose.png', 'digits/b/deep/3.jpg',
    'digits/.DS_Store', 'digits/a/.hidden.jpg'].map(entry), 'cats');
  assert.deepEqual(shape(got), [['a', ['digits/a/2.jpg']], ['b', ['digits/b/1.jpg', 'digits/b/deep/3.jpg']],
    ['cats', ['digits/loose.png']]]);
  assert.equal(got.hidden, 2);
});

test('dropped items: a dropped folder is a class, dropped files go to the selected class', () => {
  const got = groupByFolder(['3/a.jpg', '3/b.jpg', 'x.png'].map(entry), 'dogs', false);
  assert.deepEqual(shape(got), [['3', ['3/a.jpg', '3/b.jpg']], ['dogs', ['x.png']]]);
  // loose files join the selected class where a folder of that name is
  assert.deepEqual(shape(groupByFolder(['dogs/a.jpg', 'b.jpg'].map(entry), 'dogs', false)),
    [['dogs', ['dogs/a.jpg', 'b.jpg']]]);
});

test('hidden files are not examples', () => {
  assert.equal(isHidden('a/.DS_Store'), true);
  assert.equal(isHidden('.git/x.png'), true);
  assert.equal(isHidden('a/Thumbs.db'), true);
  assert.equal(isHidden('a/b.png'), false);
});
