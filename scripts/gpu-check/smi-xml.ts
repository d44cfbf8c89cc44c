/**
 * What the check reads from `nvidia-smi -q -x` (nvidia_smi_log/gpu/...), as text per item.
 * Element names differ between drivers (power_readings before R530, gpu_power_readings
 * after; clocks_throttle_reasons before R535, clocks_event_reasons after): both are read.
 */
import { child, childrenNamed, parseXml, textAt, type XmlElement } from './xml.js';

export interface XmlFb {
  total?: string;
  reserved?: string;
  used?: string;
  free?: string;
}

export interface XmlProcess {
  pid: number;
  gpuInstanceId?: string;
  computeInstanceId?: string;
  type?: string;
  name?: string;
  usedMemory?: string;
}

export interface XmlMigDevice {
  index?: string;
  gpuInstanceId?: string;
  computeInstanceId?: string;
  fb: XmlFb;
}

export interface XmlGpu {
  /** The gpu element's id attribute: its PCI bus id. */
  id: string;
  productName?: string;
  uuid?: string;
  minorNumber?: string;
  migCurrent?: string;
  fb: XmlFb;
  pcie: { replayCounter?: string; txUtil?: string; rxUtil?: string };
  remappedRows: { correctable?: string; uncorrectable?: string; pending?: string; failure?: string };
  retiredPages: { sbeCount?: string; dbeCount?: string; pending?: string };
  temperature: { gpu?: string; memory?: string };
  power: { average?: string; instant?: string; draw?: string; enforcedLimit?: string };
  clocks: { graphics?: string; sm?: string; mem?: string };
  maxClocks: { graphics?: string; sm?: string; mem?: string };
  performanceState?: string;
  fanSpeed?: string;
  utilization: { gpu?: string; memory?: string; encoder?: string; decoder?: string };
  /** Throttle reasons by the element's suffix (gpu_idle, sw_power_cap, ...): "Active"/"Not Active". */
  clockEventReasons: Record<string, string>;
  processes: XmlProcess[];
  mig: XmlMigDevice[];
}

export interface XmlLog {
  driverVersion?: string;
  attachedGpus?: string;
  gpus: XmlGpu[];
}

function fb(el: XmlElement | undefined): XmlFb {
  return { total: textAt(el, 'total'), reserved: textAt(el, 'reserved'), used: textAt(el, 'used'), free: textAt(el, 'free') };
}

function reasons(gpu: XmlElement): Record<string, string> {
  const block = child(gpu, 'clocks_event_reasons') ?? child(gpu, 'clocks_throttle_reasons');
  const out: Record<string, string> = {};
  for (const c of block?.children ?? []) {
    const m = /^clocks_(?:event|throttle)_reason_(.+)$/.exec(c.name);
    if (m) out[m[1]!] = c.text;
  }
  return out;
}

function processes(gpu: XmlElement): XmlProcess[] {
  return childrenNamed(child(gpu, 'processes'), 'process_info').flatMap((p) => {
    const pid = Number(textAt(p, 'pid'));
    if (!Number.isInteger(pid)) return [];
    return [{
      pid,
      gpuInstanceId: textAt(p, 'gpu_instance_id'),
      computeInstanceId: textAt(p, 'compute_instance_id'),
      type: textAt(p, 'type'),
      name: textAt(p, 'process_name'),
      usedMemory: textAt(p, 'used_memory'),
    }];
  });
}

function gpuOf(g: XmlElement): XmlGpu {
  const power = child(g, 'gpu_power_readings') ?? child(g, 'power_readings');
  return {
    id: g.attrs.id ?? '',
    productName: textAt(g, 'product_name'),
    uuid: textAt(g, 'uuid'),
    minorNumber: textAt(g, 'minor_number'),
    migCurrent: textAt(g, 'mig_mode/current_mig'),
    fb: fb(child(g, 'fb_memory_usage')),
    pcie: { replayCounter: textAt(g, 'pci/replay_counter'), txUtil: textAt(g, 'pci/tx_util'), rxUtil: textAt(g, 'pci/rx_util') },
    remappedRows: {
      correctable: textAt(g, 'remapped_rows/remapped_row_corr'),
      uncorrectable: textAt(g, 'remapped_rows/remapped_row_unc'),
      pending: textAt(g, 'remapped_rows/remapped_row_pending'),
      failure: textAt(g, 'remapped_rows/remapped_row_failure'),
    },
    retiredPages: {
      sbeCount: textAt(g, 'retired_pages/multiple_single_bit_retirement/retired_count'),
      dbeCount: textAt(g, 'retired_pages/double_bit_retirement/retired_count'),
      pending: textAt(g, 'retired_pages/pending_retirement'),
    },
    temperature: { gpu: textAt(g, 'temperature/gpu_temp'), memory: textAt(g, 'temperature/memory_temp') },
    power: {
      average: textAt(power, 'average_power_draw'),
      instant: textAt(power, 'instant_power_draw'),
      draw: textAt(power, 'power_draw'),
      enforcedLimit: textAt(power, 'enforced_power_limit') ?? textAt(power, 'current_power_limit'),
    },
    clocks: { graphics: textAt(g, 'clocks/graphics_clock'), sm: textAt(g, 'clocks/sm_clock'), mem: textAt(g, 'clocks/mem_clock') },
    maxClocks: { graphics: textAt(g, 'max_clocks/graphics_clock'), sm: textAt(g, 'max_clocks/sm_clock'), mem: textAt(g, 'max_clocks/mem_clock') },
    performanceState: textAt(g, 'performance_state'),
    fanSpeed: textAt(g, 'fan_speed'),
    utilization: {
      gpu: textAt(g, 'utilization/gpu_util'),
      memory: textAt(g, 'utilization/memory_util'),
      encoder: textAt(g, 'utilization/encoder_util'),
      decoder: textAt(g, 'utilization/decoder_util'),
    },
    clockEventReasons: reasons(g),
    processes: processes(g),
    mig: childrenNamed(child(g, 'mig_devices'), 'mig_device').map((m) => ({
      index: textAt(m, 'index'),
      gpuInstanceId: textAt(m, 'gpu_instance_id'),
      computeInstanceId: textAt(m, 'compute_instance_id'),
      fb: fb(child(m, 'fb_memory_usage')),
    })),
  };
}

export function parseSmiXml(text: string): XmlLog {
  const root = parseXml(text);
  if (root.name !== 'nvidia_smi_log') throw new Error(`nvidia-smi -q -x: root element is <${root.name}>, not <nvidia_smi_log>`);
  return {
    driverVersion: textAt(root, 'driver_version'),
    attachedGpus: textAt(root, 'attached_gpus'),
    gpus: childrenNamed(root, 'gpu').map(gpuOf),
  };
}
