// Taro with its own types: Taro.request into streamChat and into a StreamDecoder.
import Taro from '@tarojs/taro';
import { init, StreamDecoder, streamChat } from 'chunkwise';

export async function ask(url: string, show: (text: string) => void): Promise<void> {
  await init();
  streamChat({
    request: Taro.request,
    url,
    body: { model: 'demo', messages: [{ role: 'user', content: '你好' }] },
    onUpdate: (view) => show(view.text),
  });

  const decoder = new StreamDecoder({ format: 'openai' });
  const task = Taro.request({
    url, method: 'POST', enableChunked: true, responseType: 'arraybuffer',
    data: { model: 'demo', stream: true },
    complete: () => decoder.finish(),
  });
  task.onChunkReceived((res) => show(decoder.push(res.data).text));
}
