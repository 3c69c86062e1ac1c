// Vite for a browser, with no option for chunkwise.
export default {};
