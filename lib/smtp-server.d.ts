// Types of the deep import 'smtp-server-rs/lib/smtp-server': the package's own.
export * from '../index';
export { default } from '../index';
