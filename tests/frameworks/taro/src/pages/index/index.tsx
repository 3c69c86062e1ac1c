// The README's Taro example in a page: stream an answer with Taro.request and chunkwise,
// render it with chunkwise/markdown. The page is opened with ?url=<the chat endpoint>; it
// stores what it showed under 'chunkwise-result' when the answer is complete.
import { useState } from 'react';
import Taro, { useLoad } from '@tarojs/taro';
import { View, RichText } from '@tarojs/components';
import { init, StreamDecoder } from 'chunkwise';
import { init as initMarkdown, MarkdownRenderer, type Patch, type RichTextNode } from 'chunkwise/markdown';

export default function Index() {
  const [blocks, setBlocks] = useState<(RichTextNode[] | string)[]>([]);

  useLoad(async ({ url }: { url: string }) => {
    await Promise.all([init(), initMarkdown()]);
    const decoder = new StreamDecoder({ format: 'openai', pace: false });
    const md = new MarkdownRenderer({ patches: 'blocks' });
    const shown: (RichTextNode[] | string)[] = [];
    let text = '';
    const show = (patch: Patch) => {
      for (const b of patch.blocks) shown[b.index] = b.nodes;
      shown.length = patch.count;
      setBlocks(shown.slice());
    };
    const task = Taro.request({
      url: decodeURIComponent(url), method: 'POST',
      data: { model: 'demo', stream: true, messages: [{ role: 'user', content: '你好' }] },
      enableChunked: true, responseType: 'arraybuffer',
      complete: () => {
        const end = decoder.finish();
        text += end.text;
        show(md.append(end.text));
        show(md.finish());
        Taro.setStorageSync('chunkwise-result', { text, blocks: shown });
        decoder.free();
        md.free();
      },
    });
    task.onChunkReceived((res) => {
      const u = decoder.push(res.data);
      text += u.text;
      show(md.append(u.text));
    });
  });

  return (
    <View className='answer'>
      {blocks.map((nodes, i) => <RichText key={i} nodes={nodes} />)}
    </View>
  );
}
