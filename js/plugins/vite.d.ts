// chunkwise/vite: a Vite plugin for uni-app mini-program builds; `plugins: [uni(), chunkwise()]`.
declare function chunkwise(options?: {
  /** Default: true when uni-app builds a mini program (UNI_PLATFORM mp-*, quickapp-webview*). */
  miniprogram?: boolean;
}): { name: string; enforce: 'pre'; config(): unknown; generateBundle(options: unknown, bundle: Record<string, any>): void };
export = chunkwise;
