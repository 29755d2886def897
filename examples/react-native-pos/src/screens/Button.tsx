import { Pressable, Text } from 'react-native';
import type { StyleProp, ViewStyle } from 'react-native';

import { styles } from '../styles';

/** A labelled `Pressable`; `testID` lets the tests press it. */
export function Button(props: { label: string; onPress: () => void; disabled?: boolean; danger?: boolean; testID?: string; style?: StyleProp<ViewStyle> }) {
  const { label, onPress, disabled = false, danger = false, testID, style } = props;
  return (
    <Pressable
      testID={testID}
      accessibilityRole="button"
      accessibilityState={{ disabled }}
      disabled={disabled}
      onPress={onPress}
      style={[styles.button, danger && styles.buttonDanger, disabled && styles.buttonDisabled, style]}
    >
      <Text style={styles.buttonText}>{label}</Text>
    </Pressable>
  );
}
