// chunkwise/vite: a Vite plugin; `plugins: [uni(), chunkwise()]` for uni-app mini-program builds,
// `plugins: [chunkwise()]` for the dev server of Vite 7 and older.
declare function chunkwise(options?: {
  /** Default: true when uni-app builds a mini program (UNI_PLATFORM mp-*, quickapp-webview*). */
  miniprogram?: boolean;
}): { name: string; enforce: 'pre'; config(): unknown; generateBundle(options: unknown, bundle: Record<string, any>): void };
export = chunkwise;
