// Vite 7 and older: the dev server's dependency pre-bundling moves chunkwise away from its
// .wasm; the plugin keeps chunkwise out of it. (Vite 8 and `vite build` need nothing.)
import chunkwise from 'chunkwise/vite';

export default {
  plugins: [chunkwise()],
};
