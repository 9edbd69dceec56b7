from setuptools import find_packages, setup

package_name = 'softmaint_sim'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='softmaint maintainers',
    maintainer_email='maintainers@softmaint.dev',
    description='MuJoCo simulator of a degrading soft continuum arm: dataset generator, '
                'rosbag export and the live sim robot node.',
    license='Apache-2.0',
    entry_points={'console_scripts': [
        'softmaint-dataset = softmaint_sim.dataset_cli:main',
        'sim_robot = softmaint_sim.sim_robot:main',
        'softmaint-sim-bench = softmaint_sim.bench:main',
        'softmaint-sim-fidelity = softmaint_sim.fidelity:main',
    ]},
)
