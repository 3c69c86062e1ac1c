// WeChat with miniprogram-api-typings: wx.request into streamChat and into a StreamDecoder.
import { init, StreamDecoder, streamChat, type ChatView } from 'chunkwise';
import { init as initMarkdown, MarkdownRenderer } from 'chunkwise/markdown';

export async function ask(url: string, show: (view: ChatView) => void): Promise<void> {
  await Promise.all([init(), initMarkdown({ wasmPath: '/miniprogram_npm/chunkwise/chunkwise_markdown.wasm.br' })]);
  const md = new MarkdownRenderer();
  const chat = streamChat({
    request: wx.request,
    url,
    body: { model: 'demo', messages: [{ role: 'user', content: '你好' }] },
    onUpdate: (view) => show(view),
    onDone: (view) => md.append(view.text),
    onError: (error, view) => console.warn(error.type, error.status, view.text),
  });
  chat.cancel();

  const decoder = new StreamDecoder({ format: 'openai' });
  const task = wx.request({
    url, method: 'POST', enableChunked: true, responseType: 'arraybuffer',
    data: { model: 'demo', stream: true },
    complete: () => decoder.finish(),
  });
  task.onChunkReceived((res) => {
    const u = decoder.push(res.data);
    if (u.error) console.warn(u.error.type, u.error.message);
  });
}
