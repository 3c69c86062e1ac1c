// chunkwise/taro: a Taro plugin; list it in config/index.js `plugins: ['chunkwise/taro']`.
declare function chunkwiseTaroPlugin(ctx: { modifyWebpackChain(fn: (args: { chain: any }) => void): void }): void;
export = chunkwiseTaroPlugin;
