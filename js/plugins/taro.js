'use strict';
/**
 * chunkwise/taro: a Taro plugin (config/index.js: `plugins: ['chunkwise/taro']`).
 *
 * Taro bundles npm packages with webpack, which resolves `exports` as for a browser and copies
 * only what the bundle imports. For mini-program targets (weapp, tt, ...; not h5) this plugin
 *   - adds the `miniprogram` export condition, so `import ... from 'chunkwise'` (and
 *     'chunkwise/markdown') take the mini-program build: no fetch, TextDecoder, WebAssembly or
 *     document, the wasm loaded with WXWebAssembly/TTWebAssembly by package path;
 *   - emits the .wasm.br file of each chunkwise module the bundle contains at
 *     miniprogram_npm/chunkwise/, the path init() loads by default, so no init option is needed.
 * H5 builds are left alone: they take the browser build.
 */
const { wasmFor } = require('./plugins/wasm-files.js');

const NOT_MINI_PROGRAM = new Set(['h5', 'rn', 'harmony', 'harmony-hybrid']);

class EmitChunkwiseWasm {
  apply(compiler) {
    const { Compilation, sources } = compiler.webpack;
    compiler.hooks.thisCompilation.tap('chunkwise', (compilation) => {
      compilation.hooks.processAssets.tap({ name: 'chunkwise', stage: Compilation.PROCESS_ASSETS_STAGE_ADDITIONAL }, () => {
        for (const module of compilation.modules) {
          const wasm = wasmFor(module.resource);
          if (wasm !== null && !compilation.getAsset(wasm.fileName)) compilation.emitAsset(wasm.fileName, new sources.RawSource(wasm.source));
        }
      });
    });
  }
}

module.exports = function chunkwiseTaroPlugin(ctx) {
  ctx.modifyWebpackChain(({ chain }) => {
    const platform = process.env.TARO_ENV;
    if (!platform || NOT_MINI_PROGRAM.has(platform)) return;
    // '...' keeps webpack's own conditions after ours.
    chain.resolve.set('conditionNames', ['miniprogram', ...(chain.resolve.get('conditionNames') || ['...'])]);
    chain.plugin('chunkwise-wasm').use(EmitChunkwiseWasm);
  });
};
