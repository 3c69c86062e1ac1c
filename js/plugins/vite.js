'use strict';
/**
 * chunkwise/vite: a Vite plugin for uni-app (vite.config.js: `plugins: [uni(), chunkwise()]`).
 *
 * uni-app bundles npm packages with Vite, which resolves `exports` as for a browser and emits
 * only what the bundle imports. When uni-app builds a mini program (UNI_PLATFORM mp-weixin,
 * mp-toutiao, ...; or `chunkwise({ miniprogram: true })` for another Vite-based mini-program
 * build) this plugin
 *   - adds the `miniprogram` export condition, so `import ... from 'chunkwise'` (and
 *     'chunkwise/markdown') take the mini-program build: no fetch, TextDecoder, WebAssembly or
 *     document, the wasm loaded with WXWebAssembly/TTWebAssembly by package path;
 *   - emits the .wasm.br file of each chunkwise module the bundle contains at
 *     miniprogram_npm/chunkwise/, the path init() loads by default, so no init option is needed.
 * Other builds take the browser build; for them the plugin only keeps chunkwise out of the
 * dev server's dependency pre-bundling, which in Vite 7 and older moves the module away from
 * its .wasm (`new URL('…_bg.wasm', import.meta.url)` then points at a file that is not there).
 * Vite 8 needs no plugin for that.
 */
const { wasmFor } = require('./plugins/wasm-files.js');

function isMiniProgramBuild() {
  const platform = process.env.UNI_PLATFORM || '';
  return platform.startsWith('mp-') || platform.startsWith('quickapp-webview');
}

module.exports = function chunkwise(options) {
  const forced = options && typeof options.miniprogram === 'boolean' ? options.miniprogram : null;
  let active = false;
  return {
    name: 'chunkwise',
    enforce: 'pre',
    config() {
      active = forced === null ? isMiniProgramBuild() : forced;
      // Vite 5 (uni-app's) adds resolve.conditions to its own; the package lists
      // `miniprogram` first, so it wins over `browser` and `import`.
      return active ? { resolve: { conditions: ['miniprogram'] } } : { optimizeDeps: { exclude: ['chunkwise'] } };
    },
    generateBundle(_, bundle) {
      if (!active) return;
      const emitted = new Set();
      for (const output of Object.values(bundle)) {
        if (output.type !== 'chunk') continue;
        for (const id of Object.keys(output.modules)) {
          const wasm = wasmFor(id);
          if (wasm === null || emitted.has(wasm.fileName)) continue;
          emitted.add(wasm.fileName);
          this.emitFile({ type: 'asset', fileName: wasm.fileName, source: wasm.source });
        }
      }
    },
  };
};
