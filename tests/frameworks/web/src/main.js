// The README's browser example: stream an answer with fetch, decode it with chunkwise,
// render it with chunkwise/markdown. The page is opened with ?chat=<the chat endpoint> and
// puts what it showed in window.chunkwiseResult when the answer is complete.
import { init, streamChat, fetchRequest } from 'chunkwise';
import { init as initMarkdown, MarkdownRenderer } from 'chunkwise/markdown';

async function main() {
  await Promise.all([init(), initMarkdown()]);
  const md = new MarkdownRenderer();
  const blocks = [];
  const show = (patch) => {
    for (const b of patch.blocks) blocks[b.index] = b.nodes;
    blocks.length = patch.count;
  };
  streamChat({
    request: fetchRequest(fetch),
    url: new URLSearchParams(location.search).get('chat'),
    body: { model: 'demo', messages: [{ role: 'user', content: '你好' }] },
    pace: false,
    onUpdate: (view) => show(md.append(view.delta)),
    onDone: (view) => {
      show(md.finish());
      window.chunkwiseResult = { text: view.text, blocks };
    },
    onError: (e) => {
      window.chunkwiseResult = { error: e };
    },
  });
}
main().catch((e) => {
  window.chunkwiseResult = { error: { type: 'page', message: String((e && e.stack) || e) } };
});
