// TODO(issue 6): the provider page; being written.
import { h, replace } from '../dom';
import type { Page } from '../main';

const page: Page = (root) => {
  replace(root, h('h1', {}, 'provider'));
};
export default page;
