import { StyleSheet } from 'react-native';

/** The few styles the screens share. */
export const styles = StyleSheet.create({
  screen: { flex: 1, paddingHorizontal: 12 },
  row: { flexDirection: 'row', alignItems: 'center', paddingVertical: 10, borderBottomWidth: StyleSheet.hairlineWidth, borderColor: '#ccc' },
  grow: { flex: 1 },
  title: { fontSize: 16, fontWeight: '600' },
  muted: { color: '#666' },
  error: { color: '#b00020', paddingVertical: 6 },
  button: { paddingHorizontal: 14, paddingVertical: 8, marginLeft: 8, borderRadius: 6, backgroundColor: '#1f6feb' },
  buttonDisabled: { backgroundColor: '#9bb7e0' },
  buttonDanger: { backgroundColor: '#b00020' },
  buttonText: { color: '#fff', fontWeight: '600' },
  big: { paddingVertical: 14, marginLeft: 0, marginTop: 12, alignItems: 'center' },
  pill: { paddingHorizontal: 8, paddingVertical: 2, borderRadius: 10, overflow: 'hidden', fontSize: 12 },
});
