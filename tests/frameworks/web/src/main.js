// The README's browser example: stream an answer with fetch, decode it with chunkwise,
// render it with chunkwise/markdown. The page is opened with ?chat=<the chat endpoint> and
// puts what it showed in window.chunkwiseResult when the answer is complete.
import { init, streamChat, fetchRequest } from 'chunkwise';
import { init as initMarkdown, MarkdownRenderer } from 'chunkwise/markdown';

/** @param {unknown} result */
const report = (result) => Object.assign(window, { chunkwiseResult: result });

async function main() {
  await Promise.all([init(), initMarkdown()]);
  const md = new MarkdownRenderer({ patches: 'blocks' });
  /** @type {import('chunkwise/markdown').BlockPatch['nodes'][]} */
  const blocks = [];
  /** @param {import('chunkwise/markdown').Patch} patch */
  const show = (patch) => {
    for (const b of patch.blocks) blocks[b.index] = b.nodes;
    blocks.length = patch.count;
  };
  streamChat({
    request: fetchRequest(fetch),
    url: new URLSearchParams(location.search).get('chat') || '/v1/chat/completions',
    body: { model: 'demo', messages: [{ role: 'user', content: '你好' }] },
    pace: false,
    onUpdate: (view) => show(md.append(view.delta)),
    onDone: (view) => {
      show(md.finish());
      report({ text: view.text, blocks });
    },
    onError: (error) => report({ error }),
  });
}
main().catch((e) => report({ error: { type: 'page', message: String((e && e.stack) || e) } }));
