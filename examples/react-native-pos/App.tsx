/**
 * The app entry: opens the register's Outbox over the JSI module with the package's
 * `createOutbox` (NetInfo and AppState wired) and hands it to the app. Everything else is
 * in src/, which the tests render with the N-API flavour instead.
 */
import { DocumentDirectoryPath, mkdir } from '@dr.pogodin/react-native-fs';
import { createOutbox } from '@outbox-sdk/react-native';
import { Platform, SafeAreaView } from 'react-native';

import { posConfig } from './src/config';
import { PosRoot } from './src/PosRoot';

/**
 * The reference server on the development machine (`cargo run -p outbox-server -- --dev
 * --addr 0.0.0.0:8080`): the Android emulator reaches the host as 10.0.2.2, the iOS
 * simulator as localhost. On a device, use the machine's LAN address.
 */
export const SERVER_URL = Platform.OS === 'android' ? 'http://10.0.2.2:8080' : 'http://localhost:8080';

async function openRegister() {
  const config = posConfig(DocumentDirectoryPath, SERVER_URL);
  // databasePath puts the file in <documents>/outbox/<workspace>/; the engine does not create folders.
  await mkdir(config.path.slice(0, config.path.lastIndexOf('/')));
  return createOutbox(config);
}

export default function App() {
  return (
    <SafeAreaView style={{ flex: 1 }}>
      <PosRoot open={openRegister} />
    </SafeAreaView>
  );
}
