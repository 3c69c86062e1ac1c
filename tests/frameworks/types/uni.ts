// uni-app with @dcloudio/types: uni.request into streamChat and into a StreamDecoder.
import { init, StreamDecoder, streamChat, type ChunkedRequestTask } from 'chunkwise';

export async function ask(url: string, show: (text: string) => void): Promise<void> {
  await init();
  streamChat({
    request: uni.request,
    url,
    body: { model: 'demo', messages: [{ role: 'user', content: '你好' }] },
    onUpdate: (view) => show(view.text),
  });

  const decoder = new StreamDecoder({ format: 'openai' });
  // @dcloudio/types declares no onChunkReceived on RequestTask, although uni.request returns
  // WeChat's task: chunkwise's ChunkedRequestTask types it (streamChat above needs nothing).
  const task: ChunkedRequestTask = uni.request({
    url, method: 'POST', enableChunked: true, responseType: 'arraybuffer',
    data: { model: 'demo', stream: true },
    complete: () => decoder.finish(),
  });
  task.onChunkReceived?.((res) => show(decoder.push(res.data).text));
}
