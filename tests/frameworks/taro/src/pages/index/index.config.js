export default definePageConfig({ navigationBarTitleText: 'chunkwise' });
