/**
 * React Native entry: registers the app under the name in app.json (the name the native
 * host project was created with: `OutboxPos`).
 */
import { AppRegistry } from 'react-native';

import App from './App';
import { name as appName } from './app.json';

AppRegistry.registerComponent(appName, () => App);
