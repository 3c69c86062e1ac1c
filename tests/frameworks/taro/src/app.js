import { Component } from 'react';
import 'chunkwise/chunkwise-markdown.css';

export default class App extends Component {
  render() {
    return this.props.children;
  }
}
