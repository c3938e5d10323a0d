import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './components/App.js';
import { applyStoredTheme } from './components/ChatView.js';
import { ErrorBoundary } from './components/ErrorBoundary.js';
import { registerShellWorker } from './install.js';
import { store } from './state/store.js';
import './styles.css';

applyStoredTheme();
store.init();
registerShellWorker();

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <ErrorBoundary>
        <App />
      </ErrorBoundary>
    </StrictMode>,
  );
}
