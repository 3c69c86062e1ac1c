// uni-app (vue3 + vite), as the official template lays it out, plus the plugin chunkwise asks for.
import { defineConfig } from 'vite';
import uni from '@dcloudio/vite-plugin-uni';
import chunkwise from 'chunkwise/vite';

export default defineConfig({
  plugins: [uni(), chunkwise()],
});
